'use strict';
// Loads the compiled addon and gives its errors a class of their own. See index.d.ts for the API.
const path = require('node:path');

// STRATA_NATIVE_ADDON names another build of this same addon (the stress run's sanitized one).
const file = process.env.STRATA_NATIVE_ADDON
  ? path.resolve(process.env.STRATA_NATIVE_ADDON)
  : path.join(__dirname, 'build', 'Release', 'strata_libvirt.node');
let binding;
try {
  binding = require(file);
} catch (err) {
  const hint =
    err && err.code === 'MODULE_NOT_FOUND'
      ? 'the addon is not built: run `npm install` (or `npm run build:native`) with libvirt-dev installed'
      : `the addon failed to load: ${err && err.message}`;
  const e = new Error(`strata: ${hint}`);
  e.cause = err;
  throw e;
}

/** An error reported by libvirt, with libvirt's own code, domain and level names. */
class LibvirtError extends Error {
  constructor(message, details) {
    super(message);
    this.name = 'LibvirtError';
    Object.assign(this, details);
  }
}
binding.setErrorClass(LibvirtError);

module.exports = {
  open: binding.open,
  openReadOnly: binding.openReadOnly,
  Connection: binding.Connection,
  Domain: binding.Domain,
  DomainSnapshot: binding.DomainSnapshot,
  LibvirtError,
  constants: binding.constants,
  enums: binding.enums,
  ...binding.constants,
};
