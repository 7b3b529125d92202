from tfsconvert.cli import main

main()
