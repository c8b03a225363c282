/**
 * The CommonJS entry (`require('rils')`). rils is an ES module: Node.js 20.19+ and 22.12+ can
 * `require()` it, and this returns the same module as `import`. Where Node cannot (older versions,
 * or `--no-experimental-require-module`), the error says what to write instead.
 * @internal
 * @module
 */
const REQUIRE_ESM_CODES = ['ERR_REQUIRE_ESM', 'ERR_REQUIRE_ASYNC_MODULE'];

try {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the CommonJS entry: require(esm) of the ES module
  module.exports = require('./index.js');
} catch (error) {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !REQUIRE_ESM_CODES.includes(code)) throw error;
  throw new Error(
    `rils is an ES module, which this Node.js (${process.version}) cannot require() (${code}). ` +
      "From CommonJS, load it with `const { Rils } = await import('rils')` (inside an async function), " +
      'or a Node.js that can require() ES modules (20.19+ or 22.12+, without --no-experimental-require-module).',
    { cause: error },
  );
}
