/**
 * Geo of a tracker from a MaxMind database (`MAXMINDDB_FILE`, a GeoIP2/GeoLite2 City or Country
 * .mmdb), as OpenReplay's assist server derives it: the country's ISO code, the first subdivision's
 * and the city's English names. Read with mmdb-lib (MIT, the reader under the `maxmind` package),
 * the whole file loaded once at start: a lookup is a walk of an in-memory tree, no I/O.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { type CityResponse, Reader } from 'mmdb-lib';
import { ConfigError } from '../config';

export interface GeoFields {
  userCountry: string | null;
  userState: string | null;
  userCity: string | null;
}

export class GeoLookup {
  private readonly reader: Reader<CityResponse>;

  constructor(buffer: Buffer) {
    this.reader = new Reader<CityResponse>(buffer);
  }

  /** Opens the database, or stops the start with a message naming the variable. */
  static open(file: string): GeoLookup {
    try {
      return new GeoLookup(readFileSync(file));
    } catch (err) {
      throw new ConfigError(`MAXMINDDB_FILE: cannot read ${file} as a MaxMind database: ${(err as Error).message}`);
    }
  }

  /** Geo of an address (IPv4, IPv6, IPv4-mapped IPv6); null when the address is not one or is not in the database. */
  lookup(address: string | undefined): GeoFields | null {
    const ip = clientAddress(address);
    if (ip === undefined) return null;
    let hit: CityResponse | null;
    try {
      hit = this.reader.get(ip);
    } catch {
      return null;
    }
    if (!hit) return null;
    return {
      userCountry: hit.country?.iso_code ?? null,
      userState: hit.subdivisions?.[0]?.names?.en ?? null,
      userCity: hit.city?.names?.en ?? null,
    };
  }
}

/** An address as the database knows it: `::ffff:1.2.3.4` is 1.2.3.4; anything that is not an IP is undefined. */
export function clientAddress(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let ip = raw.trim();
  if (ip.toLowerCase().startsWith('::ffff:') && isIP(ip.slice(7)) === 4) ip = ip.slice(7);
  return isIP(ip) ? ip : undefined;
}

/**
 * The client's address: the first address of the trusted proxy header (`CLIENT_IP_HEADER`,
 * X-Forwarded-For by default: the client as the first proxy saw it), else the socket's peer.
 */
export function addressOf(header: string | string[] | undefined, socketAddress: string | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const first = value?.split(',')[0]?.trim();
  return clientAddress(first) ?? clientAddress(socketAddress);
}
