// Which import format a set of files looks like, from their names (and the first bytes of JSON
// files): used to preselect the format and to suggest another when the chosen one fails.
const IMAGE = /\.(jpe?g|png|webp|bmp|gif|tiff?)$/i;

export interface FileHint { name: string; head?: string } // head: the first KB of a .json file

export function detectFormat(files: FileHint[]): string | null {
  if (!files.length) return null;
  const names = files.map((f) => f.name.replace(/\\/g, "/"));
  if (names.some((n) => /\.zip$/i.test(n))) return null; // inside a zip: the server decides
  if (names.some((n) => /_info\.json$/i.test(n))) return "supertuxkart";
  if (names.some((n) => /\.xml$/i.test(n))) return "voc";
  if (names.some((n) => /(^|\/)data\.ya?ml$/i.test(n)) || names.some((n) => /(^|\/)labels\/.*\.txt$/i.test(n))) return "yolo";
  const json = files.filter((f) => /\.json$/i.test(f.name));
  if (json.length) {
    const coco = json.some((f) => f.head !== undefined && /"annotations"\s*:/.test(f.head) && /"images"\s*:/.test(f.head));
    return coco ? "coco" : json.some((f) => f.head !== undefined) ? "detjson" : "coco";
  }
  if (names.every((n) => IMAGE.test(n))) return "images";
  return null;
}

/** After an import failed with `chosen`: the format to suggest instead, or null. */
export function suggestion(chosen: string, files: FileHint[]): string | null {
  const d = detectFormat(files);
  return d && d !== chosen ? d : null;
}
