// Reference UnixFS/CAR implementation for the tests: npm ipfs-unixfs-importer configured like
// kubo's `ipfs add --cid-version=1` (raw leaves, size-262144 chunker, balanced layout with 174
// links, plain directories up to 256 KiB of links), @ipld/car to write and read CARs.
//
//   node unixfs_ref.mjs import DIR [OUT.car]   -> {"root", "files": {path: cid}, "blocks": [cid...]}
//   node unixfs_ref.mjs read FILE.car          -> {"roots", "blocks": [cid...], "bad": [cid...]}
import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CarWriter, CarBlockIterator } from '@ipld/car'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'multiformats/bytes'

function* walk (root, rel = '') {
  for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
    const p = rel ? `${rel}/${name}` : name
    if (fs.statSync(path.join(root, p)).isDirectory()) yield * walk(root, p)
    else yield p
  }
}

async function importDir (dir, out) {
  // a map keyed by the full CID (blockstore-core's MemoryBlockstore keys by multihash only)
  const store = new Map()
  const blockstore = {
    async put (cid, bytes) {
      if (!(bytes instanceof Uint8Array)) { const parts = []; for await (const p of bytes) parts.push(p); bytes = Buffer.concat(parts) }
      store.set(cid.toString(), { cid, bytes }); return cid
    },
    async * get (cid) { yield store.get(cid.toString()).bytes },
    async has (cid) { return store.has(cid.toString()) }
  }
  const source = [...walk(dir)].map(p => ({ path: p, content: fs.createReadStream(path.join(dir, p)) }))
  const files = {}
  let root = null
  for await (const entry of importer(source, blockstore, {
    cidVersion: 1,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize: 262144 }),
    layout: balanced({ maxChildrenPerNode: 174 }),
    shardSplitThresholdBytes: 262144,
    wrapWithDirectory: true
  })) {
    if (entry.path === '') root = entry.cid
    else if (entry.unixfs === undefined || entry.unixfs.type === 'file' || entry.unixfs.type === 'raw') files[entry.path] = entry.cid.toString()
  }
  const blocks = [...store.keys()]
  if (out) {
    const { writer, out: stream } = CarWriter.create([root])
    const done = new Promise((resolve, reject) => {
      Readable.from(stream).pipe(fs.createWriteStream(out)).on('finish', resolve).on('error', reject)
    })
    for (const { cid, bytes } of store.values()) await writer.put({ cid, bytes })
    await writer.close()
    await done
  }
  return { root: root.toString(), files, blocks: blocks.sort() }
}

async function readCar (file) {
  const iter = await CarBlockIterator.fromIterable(fs.createReadStream(file))
  const roots = (await iter.getRoots()).map(String)
  const blocks = []
  const bad = []
  for await (const { cid, bytes } of iter) {
    blocks.push(cid.toString())
    const digest = await sha256.digest(bytes)
    if (!equals(digest.bytes, cid.multihash.bytes)) bad.push(cid.toString())
  }
  return { roots, blocks: blocks.sort(), bad }
}

const [cmd, a, b] = process.argv.slice(2)
const result = cmd === 'import' ? await importDir(a, b) : await readCar(a)
process.stdout.write(JSON.stringify(result) + '\n')
