export interface LockPackage {
  version?: string;
  dev?: boolean;
  hasInstallScript?: boolean;
  gypfile?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}
export interface LockFile {
  packages: Record<string, LockPackage>;
}
/** Lock paths of the packages the app loads at run time. */
export declare function runtimePackages(lock: LockFile): string[];
/** electron-builder `files` patterns leaving out the production packages the app does not load. */
export declare function exclusions(lock: LockFile): string[];
/** Names of runtime packages with native code of their own, which need @electron/rebuild. */
export declare function nativeRuntimePackages(lock: LockFile, has: (path: string) => boolean): string[];
