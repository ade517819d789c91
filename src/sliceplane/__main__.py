from sliceplane.cli import main

main()
