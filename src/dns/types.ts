/** Wire constants and the parsed shape of a DNS message (RFC 1035, 2782, 6891). */
export const RType = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, IXFR: 251, AXFR: 252, ANY: 255,
} as const;

export const RClass = { IN: 1, CH: 3, ANY: 255 } as const;

export const Rcode = {
  NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16,
} as const;

export const OPCODE_QUERY = 0;
/** Our advertised EDNS payload size and the cap on what we send over UDP (DNS flag day 2020). */
export const EDNS_UDP_SIZE = 1232;
/** Without EDNS a UDP message is limited to 512 bytes (RFC 1035 4.2.1). */
export const CLASSIC_UDP_SIZE = 512;

export interface SrvData { priority: number; weight: number; port: number; target: string }
export interface SoaData { mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number }
export interface MxData { preference: number; exchange: string }

/**
 * Record data by type: A/AAAA an address string; NS/CNAME/PTR a name; TXT a list of strings;
 * SRV, SOA, MX their structures; any other type its raw bytes.
 */
export type RData = string | string[] | SrvData | SoaData | MxData | Uint8Array;

/** Names are presentation form without the trailing dot ('' is the root); odd bytes are \DDD escaped. */
export interface DnsRecord { name: string; type: number; class: number; ttl: number; data: RData }

export interface DnsQuestion { name: string; type: number; class: number }

export interface EdnsOption { code: number; data: Uint8Array }
export interface Edns { udpSize: number; version: number; dnssecOk: boolean; options: EdnsOption[] }

export interface DnsMessage {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  /** Full response code: the header's 4 bits plus the OPT record's upper 8 bits. */
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authority: DnsRecord[];
  /** Additional records other than OPT, which is carried in `edns`. */
  additional: DnsRecord[];
  edns?: Edns;
}
