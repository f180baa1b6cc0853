/**
 * perfdhcp's client r (0 <= r < clients) has MAC template 00:0c:01:02:03:04 with byte i from the end
 * increased (mod 256) by byte i of r (Kea's TestControl::generateMacAddress). Lets a benchmark register
 * perfdhcp's clients before the run.
 */
export function perfdhcpMac(r: number): string {
  const mac = [0x00, 0x0c, 0x01, 0x02, 0x03, 0x04];
  for (let i = 5; i >= 0; i--) {
    mac[i] = (mac[i]! + r) & 0xff;
    if (r < 256) break;
    r >>= 8;
  }
  return mac.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
