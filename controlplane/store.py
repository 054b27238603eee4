"""The Redis parts the Authorizer reads and writes, combined into the one object it takes:
the org and key records (accounts), decisions and charges. It adds nothing of its own;
every other caller holds only the parts it uses (server.build wires them)."""

from controlplane.accounts import Accounts
from controlplane.charges import Charges
from controlplane.decisions import Decisions


class Store(Accounts, Decisions, Charges):
    pass
