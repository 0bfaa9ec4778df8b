import { isIPv4, isIPv6 } from 'node:net';

/** An IP network in a canonical text form shared by ingest and verification: `a.b.c.d/24`, or 8 full IPv6 groups `/48`. */
export interface IpNetwork {
  bytes: Buffer;
  prefix: number;
}

function parseIpv4(text: string): Buffer {
  return Buffer.from(text.split('.').map((p) => Number(p)));
}

function parseIpv6(text: string): Buffer {
  let s = text.split('%', 1)[0]!;
  // An embedded dotted IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const b = parseIpv4(v4[1]!);
    s = `${s.slice(0, -v4[1]!.length)}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head = '', tail] = s.split('::', 2) as [string, string | undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail === undefined ? [] : tail ? tail.split(':') : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(missing).fill('0'), ...tailGroups];
  if (groups.length !== 8) throw new Error('malformed IPv6 address');
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Parse `addr` or `addr/len` (PostgreSQL's inet text form included). Throws on anything else. */
export function parseIpNetwork(text: string): IpNetwork {
  const [addr = '', len] = text.split('/', 2);
  if (isIPv4(addr)) return { bytes: parseIpv4(addr), prefix: len === undefined ? 32 : Number(len) };
  if (isIPv6(addr)) return { bytes: parseIpv6(addr), prefix: len === undefined ? 128 : Number(len) };
  throw new Error('not an IP address');
}

/** Keep only the network part of an address: /24 for IPv4, /48 for IPv6 (data minimisation, ADR 0401). */
export function truncateToNetwork(address: string): IpNetwork {
  const ip = parseIpNetwork(address);
  const prefix = ip.bytes.length === 4 ? 24 : 48;
  const bytes = Buffer.from(ip.bytes);
  for (let bit = prefix; bit < bytes.length * 8; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { bytes, prefix };
}

/** The canonical text of a network: what the hash chain covers and what is sent to the INET column. */
export function formatIpNetwork(net: IpNetwork): string {
  if (net.bytes.length === 4) return `${[...net.bytes].join('.')}/${net.prefix}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(net.bytes.readUInt16BE(i).toString(16));
  return `${groups.join(':')}/${net.prefix}`;
}

/** Normalise whatever PostgreSQL returns for an INET value into the canonical text. */
export function canonicalIpNetwork(text: string | null): string | null {
  return text === null ? null : formatIpNetwork(parseIpNetwork(text));
}
