// The source a stranger's request is charged to: its IPv4 address, or its IPv6 /64. One subscriber
// usually holds a whole /64, so counting IPv6 addresses one by one would give an attacker 2^64
// sources for the price of one.
import ipaddr from 'ipaddr.js';

export function sourceOf(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  const address = ipaddr.process(ip); // an IPv4-mapped IPv6 address counts as its IPv4 address
  if (address.kind() === 'ipv4') return address.toString();
  const prefix = (address as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${prefix.join(':')}::/64`;
}
