export declare function compile(outDir: string): void;
export declare function buildDist(): void;
export declare function stagePackage(dir: string, options?: { build?: boolean }): void;
