from amanmcp.cli import main

main()
