/**
 * Bad input from the user rather than a failure of the run: an invalid parameter, override, config
 * file, experiment file or backend choice, or a folder that is not a run. `lab` exits with code 2 on
 * these and with code 1 on anything else, so the class (not the wording of a message) decides.
 */
export class InputError extends Error {
  override name = 'InputError';
}
