// Adds lock entries for @napi-rs/blake-hash's platform packages that this machine's registry
// mirror does not serve (npm 11's `npm ci` refuses a lock without them). They are never
// installed here (os/cpu differ), so only version and platform fields are recorded.
const fs = require("fs");
const l = JSON.parse(fs.readFileSync("package-lock.json"));
const plat = {
  "android-arm64": { os: ["android"], cpu: ["arm64"] },
  "darwin-arm64": { os: ["darwin"], cpu: ["arm64"] },
  "darwin-x64": { os: ["darwin"], cpu: ["x64"] },
  "freebsd-x64": { os: ["freebsd"], cpu: ["x64"] },
  "linux-arm-gnueabihf": { os: ["linux"], cpu: ["arm"] },
  "linux-arm64-gnu": { os: ["linux"], cpu: ["arm64"], libc: ["glibc"] },
  "linux-arm64-musl": { os: ["linux"], cpu: ["arm64"], libc: ["musl"] },
  "linux-ppc64-gnu": { os: ["linux"], cpu: ["ppc64"], libc: ["glibc"] },
  "linux-s390x-gnu": { os: ["linux"], cpu: ["s390x"], libc: ["glibc"] },
  "win32-arm64-msvc": { os: ["win32"], cpu: ["arm64"] },
  "win32-ia32-msvc": { os: ["win32"], cpu: ["ia32"] },
  "win32-x64-msvc": { os: ["win32"], cpu: ["x64"] },
};
const out = {};
for (const [k, v] of Object.entries(l.packages)) {
  out[k] = v;
  if (k === "node_modules/@napi-rs/blake-hash") {
    for (const [p, f] of Object.entries(plat)) {
      out[`node_modules/@napi-rs/blake-hash-${p}`] = { version: "1.3.6", cpu: f.cpu, ...(f.libc ? { libc: f.libc } : {}), license: "MIT", optional: true, os: f.os, engines: { node: ">= 10" } };
    }
  }
}
// in npm's own order (keys sorted, as npm writes them), so a later `npm install` leaves the file as it is
l.packages = Object.fromEntries(Object.keys(out).sort((a, b) => a.localeCompare(b, "en")).map((k) => [k, out[k]]));
fs.writeFileSync("package-lock.json", JSON.stringify(l, null, 2) + "\n");
