export declare const NODE_SENSITIVE: ReadonlyArray<readonly [path: string, reason: string]>;
