// vega-scale ships index.d.ts but its package.json "exports" hides it from moduleResolution
// Bundler; only the test of ghmBinsSpec's colours uses it (devDependency), for `scheme`.
declare module 'vega-scale' {
  /** A named colour scheme: an interpolator over [0, 1] for continuous schemes, else colours. */
  export function scheme(name: string): ((t: number) => string) | string[] | undefined;
}
