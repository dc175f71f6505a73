export declare const repoRoot: string;
/** The Electron executable's path, or null when this machine has none. */
export declare function electronBinary(): string | null;
