// Preloaded (node -r) into every corpus program the tests run: name resolution for the
// emulated hub, as shims/sitecustomize.py does for Python. FIRMWARE_TEST_HOSTS is
// "name=address[,name=address]"; the program itself is not changed for the test.
'use strict';
const dns = require('dns');

const hosts = new Map(
  (process.env.FIRMWARE_TEST_HOSTS || '')
    .split(',')
    .filter(Boolean)
    .map((pair) => pair.split('=')),
);
const lookup = dns.lookup;

dns.lookup = function resolveHub(hostname, options, callback) {
  const address = hosts.get(hostname);
  if (address === undefined) {
    return lookup.call(dns, hostname, options, callback);
  }
  const done = typeof options === 'function' ? options : callback;
  const all = typeof options === 'object' && options !== null && options.all;
  if (all) {
    return process.nextTick(done, null, [{ address, family: 4 }]);
  }
  return process.nextTick(done, null, address, 4);
};
