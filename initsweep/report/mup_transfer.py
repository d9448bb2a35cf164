"""Placeholder while the transfer section is written."""


def transfer_section(study, out, options):
    return None
