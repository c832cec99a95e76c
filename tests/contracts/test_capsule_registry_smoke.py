def test_mint__root_capsule__belongs_to_creator(registry, creator, mint_capsule):
    cid = mint_capsule(creator, kind=2)
    assert registry.ownerOf(cid) == creator
    c = registry.capsule(cid)
    assert c.kind == 2 and c.creator == creator and c.version == 1 and c.previous_id == 0
    assert registry.tokenURI(cid).startswith("ipfs://bafkrei")
