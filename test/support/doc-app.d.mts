export interface Fence {
  lang: string;
  code: string;
  /** The line of the opening fence, from 1. */
  line: number;
}

export interface TypescriptBlock {
  doc: string;
  /** The document's `ts` blocks counted from 1. */
  index: number;
  line: number;
  code: string;
  /** The example app's file the block is (`// file: src/…`), or undefined for a snippet. */
  file: string | undefined;
}

export declare function codeDocuments(root?: string): string[];
export declare function fences(text: string): { blocks: Fence[]; prose: string };
export declare function typescriptBlocks(root?: string): TypescriptBlock[];
export declare function blockPath(block: TypescriptBlock): string;
export declare function exampleApp(root?: string): Map<string, string>;
