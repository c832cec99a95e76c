# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Proof of Access node set: registry, profiles and the hot node word
@custom:contract-name poa_nodes
@license GNU Affero General Public License v3.0 only
@author CodexField
@notice Owns who the nodes of AccessStaking are: the list of registered, non-ejected nodes
        (`node_at`, `node_count`), each node's profile (endpoint, services, region, TEE signer,
        price hint) and its hot word (reliability, strikes, jails, status, jail end, pending
        reward epoch, jail and registration times). AccessStaking's `register_node` adds a
        node, its `finalize_epoch` rewrites the hot word; the stake ledger and reward modules
        `uses: poa_nodes` to check that a caller is a node. The node itself changes its
        profile with `update_node` (works while paused and while jailed).

        Example (exported by AccessStaking):
            staking.update_node("https://n1.example", 1 | 8, b"eu-west", tee, 5, sender=node)
            staking.tee_signer(node)     # tee
@custom:security Holds no funds and makes no external call. Status moves NONE -> ACTIVE <->
        JAILED -> EJECTED, and an ejected address can never register again.
"""

from interfaces import IAccessStaking

from . import masks


# @dev Service bits.
SERVICE_COMPUTE: public(constant(uint256)) = 1
SERVICE_STORAGE: public(constant(uint256)) = 2
SERVICE_EDGE: public(constant(uint256)) = 4
SERVICE_TEE: public(constant(uint256)) = 8
SERVICE_TRANSFER: public(constant(uint256)) = 16
SERVICE_ALL: public(constant(uint256)) = 31


# @dev Node status (as in IAccessStaking).
STATUS_NONE: public(constant(uint8)) = 0
STATUS_ACTIVE: public(constant(uint8)) = 1
STATUS_JAILED: public(constant(uint8)) = 2
STATUS_EJECTED: public(constant(uint8)) = 3


# @dev Registered, non-ejected nodes (index -> address), and their count.
_nodes: HashMap[uint256, address]
node_count: public(uint256)


# @dev Position of a node in `_nodes`.
_index: HashMap[address, uint256]


# @dev Hot node word: reliability 64 | strikes 8 @64 | jails 8 @72 | status 8 @80 |
#      jailed_until 32 @88 | pending epoch + 1 32 @120 (0: none) | timestamp of the latest jail
#      40 @152 | registration timestamp 40 @192.
_meta: HashMap[address, uint256]


# @dev Profile word: tee signer 160 | region 64 @160 | services 32 @224.
_profile: HashMap[address, uint256]


# @dev Node endpoint URL.
endpoint: public(HashMap[address, String[256]])


# @dev Node price hint per MU (0: none), in the UsageMeter's payment token units.
price_per_mu: public(HashMap[address, uint256])


@external
def update_node(endpoint: String[256], services: uint256, region: bytes8, tee_signer: address, price_per_mu: uint256):
    """
    @dev Replaces the caller's profile (works while paused and while jailed).
    @param endpoint The node's public endpoint (URL).
    @param services Service bits (non-zero, within SERVICE_ALL).
    @param region A short region code.
    @param tee_signer The node's TEE attestation key (required with the TEE bit).
    @param price_per_mu The node's price hint per MU (0: none).
    """
    self._require_node(msg.sender)
    self._check_profile(endpoint, services, tee_signer)
    self._profile[msg.sender] = self._pack_profile(services, region, tee_signer)
    self.endpoint[msg.sender] = endpoint
    self.price_per_mu[msg.sender] = price_per_mu
    log IAccessStaking.NodeUpdated(
        node=msg.sender,
        endpoint=endpoint,
        services=services,
        region=region,
        tee_signer=tee_signer,
        price_per_mu=price_per_mu,
    )


@external
@view
def tee_signer(node: address) -> address:
    """
    @dev The node's registered TEE signer (zero if none).
    @param node The node.
    @return address The signer.
    """
    return convert(convert(self._profile[node] & masks.MASK160, uint160), address)


@external
@view
def region(node: address) -> bytes8:
    """
    @dev The node's region code.
    @param node The node.
    @return bytes8 The region.
    """
    return convert(convert((self._profile[node] >> 160) & masks.MASK64, uint64), bytes8)


@external
@view
def node_at(index: uint256) -> address:
    """
    @dev The registered (non-ejected) node at `index` < `node_count`.
    @param index The position.
    @return address The node.
    """
    return self._nodes[index]


@internal
@view
def _require_node(addr: address):
    """
    @dev Reverts unless `addr` is a registered node that is not ejected.
    @param addr The address.
    """
    status: uint8 = self._status_of(self._meta[addr])
    assert status == STATUS_ACTIVE or status == STATUS_JAILED, "poa: unknown node"


@internal
@pure
def _status_of(meta: uint256) -> uint8:
    """
    @dev The stored status.
    @param meta The node's hot word.
    @return uint8 The status.
    """
    return convert((meta >> 80) & 255, uint8)


@internal
@pure
def _status_at(meta: uint256, epoch: uint256) -> uint8:
    """
    @dev The status in `epoch`: a jail ends at `jailed_until`.
    @param meta The node's hot word.
    @param epoch The epoch.
    @return uint8 The status.
    """
    status: uint8 = convert((meta >> 80) & 255, uint8)
    if status == STATUS_JAILED and epoch >= (meta >> 88) & masks.MASK32:
        return STATUS_ACTIVE
    return status


@internal
@pure
def _check_profile(endpoint: String[256], services: uint256, tee_signer: address):
    """
    @dev Reverts on an invalid node profile.
    @param endpoint The endpoint (non-empty).
    @param services Service bits (non-zero, within SERVICE_ALL).
    @param tee_signer Required with the TEE bit.
    """
    assert len(endpoint) > 0, "poa: empty endpoint"
    assert services != 0 and services & ~SERVICE_ALL == 0, "poa: bad services"
    assert services & SERVICE_TEE == 0 or tee_signer != empty(address), "poa: tee signer required"


@internal
@pure
def _pack_profile(services: uint256, region: bytes8, tee_signer: address) -> uint256:
    """
    @dev Packs the profile word.
    @param services Service bits.
    @param region Region code.
    @param tee_signer TEE signer.
    @return uint256 tee_signer 160 | region 64 @160 | services 32 @224.
    """
    return (
        convert(convert(tee_signer, uint160), uint256)
        | (convert(convert(region, uint64), uint256) << 160)
        | (services << 224)
    )
