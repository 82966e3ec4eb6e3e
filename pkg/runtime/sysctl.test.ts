import { test } from "node:test";
import assert from "node:assert/strict";
import { parseWithBigint, stringifyWithBigint, validateCgroupParent, validateSysctls } from "./index.js";

test("namespaced sysctls pass; node-wide ones and ones of a shared host namespace are refused", () => {
  assert.deepEqual(validateSysctls({ "net/ipv4/ip_forward": "1", "kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "20" }, { hostNetwork: false, hostIpc: false }), {
    "net.ipv4.ip_forward": "1",
    "kernel.shm_rmid_forced": "1",
    "fs.mqueue.msg_max": "20",
  });
  assert.throws(() => validateSysctls({ "vm.swappiness": "1" }, { hostNetwork: false, hostIpc: false }), /"vm.swappiness" is not a namespaced sysctl/);
  assert.throws(() => validateSysctls({ "kernel.hostname": "x" }, { hostNetwork: false, hostIpc: false }), /not a namespaced/);
  assert.throws(() => validateSysctls({ "net.ipv4.ip_forward": "1" }, { hostNetwork: true, hostIpc: false }), /host network/);
  assert.throws(() => validateSysctls({ "kernel.sem": "1 2 3 4" }, { hostNetwork: false, hostIpc: true }), /host IPC/);
  assert.throws(() => validateSysctls({ "net.ipv4.x": "1\n2" }, { hostNetwork: false, hostIpc: false }), /newline/);
});

test("records round-trip bigints through JSON", () => {
  const v = { createdAt: 1795905983642008394n, nested: { list: [1n, 2] }, s: "x" };
  assert.deepEqual(parseWithBigint(stringifyWithBigint(v)), v);
});

test("cgroup parents follow the driver's syntax", () => {
  for (const ok of ["", "/kubepods/besteffort/pod123", "/"]) validateCgroupParent(ok, "cgroupfs");
  for (const bad of ["kubepods", "/kubepods/../x"]) assert.throws(() => validateCgroupParent(bad, "cgroupfs"), /cgroup_parent/);
  for (const ok of ["", "kubepods-besteffort-pod123.slice", "/test.slice", "/kubepods.slice/kubepods-burstable.slice"]) validateCgroupParent(ok, "systemd");
  for (const bad of ["/kubepods/besteffort", "kubepods"]) assert.throws(() => validateCgroupParent(bad, "systemd"), /systemd slice/);
});
