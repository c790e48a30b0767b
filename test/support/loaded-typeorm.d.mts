export declare function loadedTypeormCopies(): string[];
