/**
 * The first key that appears twice in one object of a valid JSON text, or undefined. Two parsers may keep different
 * copies of a duplicated key, and the signature covers the bytes, so such a body is refused.
 */
export function duplicateKey(text: string): string | undefined {
  const objects: (Set<string> | null)[] = []; // null marks an array
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = objects.at(-1);
      if (top && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.has(key)) return key;
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (ch === '{') {
      objects.push(new Set());
      expectKey = true;
    } else if (ch === '[') {
      objects.push(null);
    } else if (ch === '}' || ch === ']') {
      objects.pop();
    } else if (ch === ',') {
      expectKey = objects.at(-1) != null;
    }
  }
  return undefined;
}
