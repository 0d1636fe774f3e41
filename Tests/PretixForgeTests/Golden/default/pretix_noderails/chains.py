"""Names and block explorers of the chains a NodeRails payment can settle on, by chain id.

NodeRails reports a payment's chain as its EVM chain id only. The built-in table names the
common ones; the forge config's [noderails.chains] (texts.CHAIN_NAMES / CHAIN_EXPLORERS) adds
others or overrides these. A chain without an explorer shows its transaction hash unlinked:
a guessed URL could send the customer to a page that does not exist, or to somebody else's.
"""

from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote

from django.utils.translation import gettext_lazy as _

from .texts import CHAIN_EXPLORERS, CHAIN_NAMES

# {hash} in an explorer URL is replaced by the percent-encoded transaction hash.
HASH_PLACEHOLDER = '{hash}'

BUILTIN = {
    1: ('Ethereum', 'https://etherscan.io/tx/{hash}'),
    10: ('OP Mainnet', 'https://optimistic.etherscan.io/tx/{hash}'),
    56: ('BNB Smart Chain', 'https://bscscan.com/tx/{hash}'),
    137: ('Polygon', 'https://polygonscan.com/tx/{hash}'),
    8453: ('Base', 'https://basescan.org/tx/{hash}'),
    42161: ('Arbitrum One', 'https://arbiscan.io/tx/{hash}'),
    43114: ('Avalanche C-Chain', 'https://snowtrace.io/tx/{hash}'),
    11155111: ('Sepolia', 'https://sepolia.etherscan.io/tx/{hash}'),
    84532: ('Base Sepolia', 'https://sepolia.basescan.org/tx/{hash}'),
    80002: ('Polygon Amoy', 'https://amoy.polygonscan.com/tx/{hash}'),
}


@dataclass(frozen=True)
class Transaction:
    """What people are shown of a payment's on-chain transaction."""

    network: str
    tx_hash: str
    # '' when the chain has no explorer we know: the hash is shown as text then.
    tx_url: str


def chains() -> dict:
    """chain id -> (name, explorer URL or ''): the built-in table with the config's entries over it."""
    table = dict(BUILTIN)
    for key, name in CHAIN_NAMES.items():
        table[int(key)] = (name, CHAIN_EXPLORERS.get(key, ''))
    return table


def _chain_id(value) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def network_name(chain_id) -> str:
    number = _chain_id(chain_id)
    known = chains().get(number)
    if known:
        return known[0]
    if number is None:
        return ''
    return str(_('Chain {id}').format(id=number))


def explorer_url(chain_id, tx_hash: str) -> str:
    """The transaction's page on its chain's explorer; '' when there is none to link to."""
    known = chains().get(_chain_id(chain_id))
    template = known[1] if known else ''
    if not tx_hash or not template.startswith('https://') or HASH_PLACEHOLDER not in template:
        return ''
    return template.replace(HASH_PLACEHOLDER, quote(tx_hash, safe=''))


def transaction(info: dict) -> Optional[Transaction]:
    """The transaction of a payment's info, None before NodeRails has reported one."""
    tx_hash = info.get('tx_hash')
    if not tx_hash or not isinstance(tx_hash, str):
        return None
    chain_id = info.get('chain_id')
    return Transaction(network_name(chain_id), tx_hash, explorer_url(chain_id, tx_hash))
