"""One module per ``voxface`` command: ``add_parser(subparsers)`` declares its flags, ``run(args)`` does the work.

A module imports only the standard library and voxface's light modules at its top; what a command needs from
torch, Lightning or transformers is imported inside ``run``, after its arguments, paths and configuration have
been checked, so that a mistake is answered in well under a second.
"""
