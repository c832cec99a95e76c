// Reference did:ethr resolution for the tests: npm ethr-did-resolver through did-resolver,
// configured with one network (the test chain: its chain id, RPC URL and IdentityRegistry).
//
//   node ethr_did_ref.mjs RPC_URL REGISTRY CHAIN_ID DID [DID ...]   -> {did: resolution result}
import { Resolver } from 'did-resolver'
import { getResolver } from 'ethr-did-resolver'

const [rpcUrl, registry, chainId, ...dids] = process.argv.slice(2)
const resolver = new Resolver(getResolver({ networks: [{ chainId: BigInt(chainId), rpcUrl, registry }] }))
const out = {}
for (const did of dids) {
  out[did] = await resolver.resolve(did)
}
process.stdout.write(JSON.stringify(out, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)))
process.exit(0)
