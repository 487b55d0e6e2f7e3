"""`python -m storecast`: the same binary as the `storecast` command."""

from storecast.cli import main

main()
