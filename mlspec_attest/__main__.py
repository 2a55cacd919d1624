from mlspec_attest.cli.main import main

main()
