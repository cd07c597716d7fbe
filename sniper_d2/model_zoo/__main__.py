"""``python -m sniper_d2.model_zoo``: list sniper_d2's configs with their paths;
``python -m sniper_d2.model_zoo NAME``: print the path of config NAME (for ``--config-file``)."""
import argparse
import sys

from .config_files import config_root, get_config_file, list_configs


def main(argv=None) -> int:
    """Print the list or the path; exit status 1 (with the error on stderr) for an unknown name."""
    parser = argparse.ArgumentParser(prog="python -m sniper_d2.model_zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", help="a config name, e.g. demo/sniper_shapes_R18_FPN.yaml")
    args = parser.parse_args(argv)
    if args.name is None:
        print(f"sniper_d2 configs in {config_root()}:")
        for name in list_configs():
            print(f"  {name}")
        return 0
    try:
        print(get_config_file(args.name))
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
