export declare const repoRoot: string;
/** The Electron executable's path, or null when this machine has none. */
export declare function electronBinary(): string | null;
/** The folder holding Electron's binary (`dist`, else ELECTRON_OVERRIDE_DIST_PATH, else the package's own), or null when it holds none. */
export declare function electronDist(dist?: string): string | null;
/** The version of the Electron in `dist`. */
export declare function electronVersion(dist: string): string;
