from lowres_mt.cli import main

main()
