/** The narrow interface between the DHCP handler and whatever keeps leases (memory in tests, etcd in the cluster). */

export interface Binding {
  mac: string;
  ip: string;
  hostname: string;
  nodeType: string;
  leaseSeconds: number;
}

export interface OfferRequest {
  mac: string;
  /** Option 50, a hint only. */
  requestedIp?: string;
  /** From a vendor class of the form "ycluster:<type>"; the backend decides whether to trust it. */
  reportedType?: string;
  /** Option 12 as sent by the client. */
  hostnameHint?: string;
}

export interface DhcpBackend {
  /** An address for this MAC: a known node's own address, else a (held) allocation. Throws when none is free. */
  offer(req: OfferRequest): Promise<Binding>;
  /** Binds ip to mac for leaseSeconds; null when this MAC may not have this address (the handler NAKs). */
  commit(mac: string, ip: string, leaseSeconds: number): Promise<Binding | null>;
  release(mac: string, ip: string): Promise<void>;
  /** The client found the address in use: keep it out of allocation for a while. */
  decline(mac: string, ip: string): Promise<void>;
  /** The current binding of a MAC (lease or fixed node address), or null if the server has no record of it. */
  lookup(mac: string): Promise<Binding | null>;
}
