/**
 * A minimal MaxMind DB (.mmdb, format 2.0) writer for test fixtures: an IPv4 tree with 24-bit
 * records and a data section of maps, arrays, strings and unsigned integers — enough for a tiny
 * GeoIP2-City-shaped database. Written from the format's specification
 * (https://maxmind.github.io/MaxMind-DB/), so tests need no downloaded database.
 */
import { defined } from './assert';

type Value = string | number | Value[] | { [key: string]: Value };

function controlBytes(type: number, size: number): Buffer {
  const head: number[] = [];
  let sizeBits: number;
  const extra: number[] = [];
  if (size < 29) sizeBits = size;
  else if (size < 285) {
    sizeBits = 29;
    extra.push(size - 29);
  } else if (size < 65821) {
    sizeBits = 30;
    const n = size - 285;
    extra.push(n >> 8, n & 0xff);
  } else {
    sizeBits = 31;
    const n = size - 65821;
    extra.push((n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  }
  if (type <= 7) head.push((type << 5) | sizeBits);
  else head.push(sizeBits, type - 7); // extended type: 0 in the first byte's type bits
  return Buffer.from([...head, ...extra]);
}

function uint(type: number, n: number): Buffer {
  const bytes: number[] = [];
  let v = BigInt(n);
  while (v > 0n) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return Buffer.concat([controlBytes(type, bytes.length), Buffer.from(bytes)]);
}

/** Encodes a value of the data section: strings, unsigned integers (uint32), arrays, maps. */
export function encode(value: Value): Buffer {
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([controlBytes(2, bytes.length), bytes]);
  }
  if (typeof value === 'number') return uint(6, value);
  if (Array.isArray(value)) return Buffer.concat([controlBytes(11, value.length), ...value.map(encode)]);
  const keys = Object.keys(value);
  return Buffer.concat([controlBytes(7, keys.length), ...keys.flatMap((k) => [encode(k), encode(value[k] as Value)])]);
}

/** An IPv4 database mapping each network (`a.b.c.d/len`) to its record. */
export function writeMmdb(networks: ReadonlyArray<[cidr: string, record: Value]>, databaseType = 'GeoIP2-City'): Buffer {
  // The tree: node i has [left, right]; -1 = empty so far; {data: n} = the n-th record.
  type Ref = number | { data: number };
  const nodes: [Ref, Ref][] = [[-1, -1]];
  networks.forEach(([cidr], dataIndex) => {
    const [ip, lenText] = cidr.split('/');
    const len = Number(lenText);
    const addr = defined(ip, `an address in ${cidr}`).split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
    let node = 0;
    for (let bit = 0; bit < len; bit++) {
      const side = (addr >>> (31 - bit)) & 1;
      const current = defined(nodes[node], `tree node ${node}`);
      if (bit === len - 1) {
        current[side] = { data: dataIndex };
      } else {
        let next = current[side];
        if (typeof next !== 'number' || next === -1) {
          nodes.push([-1, -1]);
          next = nodes.length - 1;
          current[side] = next;
        }
        node = next;
      }
    }
  });
  const nodeCount = nodes.length;
  const records = networks.map(([, record]) => encode(record));
  const offsets: number[] = [];
  let offset = 0;
  for (const r of records) {
    offsets.push(offset);
    offset += r.length;
  }
  const tree = Buffer.alloc(nodeCount * 6);
  const recordValue = (ref: Ref): number => (typeof ref === 'number' ? (ref === -1 ? nodeCount : ref) : nodeCount + 16 + defined(offsets[ref.data], `the offset of record ${ref.data}`));
  nodes.forEach(([left, right], i) => {
    tree.writeUIntBE(recordValue(left), i * 6, 3);
    tree.writeUIntBE(recordValue(right), i * 6 + 3, 3);
  });
  const metadata = Buffer.concat([
    controlBytes(7, 9),
    encode('node_count'), uint(6, nodeCount),
    encode('record_size'), uint(5, 24),
    encode('ip_version'), uint(5, 4),
    encode('database_type'), encode(databaseType),
    encode('languages'), encode(['en']),
    encode('binary_format_major_version'), uint(5, 2),
    encode('binary_format_minor_version'), uint(5, 0),
    encode('build_epoch'), uint(9, 1_700_000_000),
    encode('description'), encode({ en: 'hub test fixture' }),
  ]);
  return Buffer.concat([tree, Buffer.alloc(16), ...records, Buffer.from([0xab, 0xcd, 0xef]), Buffer.from('MaxMind.com'), metadata]);
}

/** A GeoIP2-City-shaped record. */
export function cityRecord(country: string, state: string | null, city: string | null): Value {
  const record: { [key: string]: Value } = { country: { iso_code: country, names: { en: country } } };
  if (state) record.subdivisions = [{ names: { en: state } }];
  if (city) record.city = { names: { en: city } };
  return record;
}
