from services.live.server import main

main()
