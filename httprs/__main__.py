"""`python -m httprs URL [OPTIONS]`: the command-line client (httprs._main)."""

from httprs._main import main

if __name__ == "__main__":
    main()
