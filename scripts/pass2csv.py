#!/usr/bin/env python3
"""Turn `login password [admin]` lines into CSV rows with bcrypt hashes, for psql \\copy.

    scripts/pass2csv.py [--rounds 12] < users.in > users.csv
    psql -v ON_ERROR_STOP=1 -f users-load.sql "dbname=kiva"     # \\copy … FROM 'users.csv'

Blank lines and lines starting with # are skipped; admin is TRUE or FALSE (default).
Hashes are made like the app makes them (FlaskSimpleAuth's bcrypt scheme): the
clear passwords never reach the database. passlib is not used: unmaintained, it
breaks with bcrypt 5.
"""

import argparse
import csv
import fileinput
import re
import sys

import bcrypt

TRUE, FALSE = {"true", "t", "yes", "1"}, {"false", "f", "no", "0"}


def rows(lines, rounds: int):
    for number, line in enumerate(lines, 1):
        if re.match(r"^\s*(#|$)", line):
            continue
        words = line.split()
        if len(words) not in (2, 3):
            raise ValueError(f"line {number}: expecting 'login password [admin]'")
        login, password, admin = words[0], words[1], words[2].lower() if len(words) == 3 else "false"
        if admin not in TRUE | FALSE:
            raise ValueError(f"line {number}: admin must be TRUE or FALSE, not {words[2]}")
        if len(password.encode()) > 72:
            raise ValueError(f"line {number}: bcrypt passwords are at most 72 bytes")
        pword = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
        yield login, pword, "TRUE" if admin in TRUE else "FALSE"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="bcrypt cost (default: 12)")
    parser.add_argument("files", nargs="*", help="users.in files (default: standard input)")
    args = parser.parse_args()
    try:
        csv.writer(sys.stdout).writerows(rows(fileinput.input(args.files), args.rounds))
    except ValueError as e:
        sys.exit(f"pass2csv: {e}")


if __name__ == "__main__":
    main()
