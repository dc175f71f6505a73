// The version written into every manifest, so a set says which Strata made it.
import packageJson from '../../../../package.json' with { type: 'json' };

export const strataVersion: string = packageJson.version;
