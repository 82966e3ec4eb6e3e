import { copyFileSync, existsSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { isIP } from "node:net";
import { InvalidArgumentError } from "../errdefs/index.js";
import { writeFileReplace } from "../sys/index.js";

// The pod's hosts, resolv.conf and hostname files are written without fsync: they matter while the pod's
// namespaces live, and a power loss ends those (the pod is then not ready and gets recreated).

export interface DnsSettings {
  servers: string[];
  searches: string[];
  options: string[];
}

const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function validateHostname(h: string): void {
  if (h.length > 64 || !HOSTNAME_RE.test(h)) throw new InvalidArgumentError(`hostname "${h}" is not a valid host name (RFC 1123, at most 64 characters)`);
}

export function hostHostname(): string {
  return osHostname();
}

export function validateDns(dns: DnsSettings): void {
  for (const s of dns.servers) if (isIP(s) === 0) throw new InvalidArgumentError(`dns_config.servers: "${s}" is not an IP address`);
  for (const s of [...dns.searches, ...dns.options]) {
    if (!s || /[\s\0]/.test(s)) throw new InvalidArgumentError(`dns_config: "${s}" must be a non-empty word without spaces`);
  }
}

/** resolv.conf from the pod's DNS config; with none, a copy of the host's. */
export function writeResolvConf(file: string, dns: DnsSettings | undefined): void {
  if (dns && (dns.servers.length || dns.searches.length || dns.options.length)) {
    const lines: string[] = [];
    if (dns.searches.length) lines.push(`search ${dns.searches.join(" ")}`);
    for (const s of dns.servers) lines.push(`nameserver ${s}`);
    if (dns.options.length) lines.push(`options ${dns.options.join(" ")}`);
    writeFileReplace(file, lines.join("\n") + "\n");
    return;
  }
  if (existsSync("/etc/resolv.conf")) copyFileSync("/etc/resolv.conf", file);
  else writeFileReplace(file, "");
}

/** /etc/hosts: the host's for host-network pods; else localhost entries plus the pod's IP and hostname. */
export function writeHosts(file: string, opts: { hostNetwork: boolean; hostname: string; ip: string | undefined }): void {
  if (opts.hostNetwork && existsSync("/etc/hosts")) {
    copyFileSync("/etc/hosts", file);
    return;
  }
  const lines = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "fe00::0\tip6-mcastprefix",
    "fe00::1\tip6-allnodes",
    "fe00::2\tip6-allrouters",
  ];
  if (opts.ip) lines.push(`${opts.ip}\t${opts.hostname}`);
  writeFileReplace(file, lines.join("\n") + "\n");
}

export function writeHostnameFile(file: string, hostname: string): void {
  writeFileReplace(file, hostname + "\n");
}
