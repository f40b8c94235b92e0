/** This package's version; part of every cache key (version.test.ts keeps it equal to package.json). */
export const PACKAGE_VERSION = '0.1.0';
