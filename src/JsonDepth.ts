/**
 * A bound on JSON nesting checked before anything walks the structure: JSON.parse and Schema decoding recurse,
 * and a value nested thousands deep overflows the stack. Used by the HTTP body reader and the Kafka envelope
 * decoder alike.
 */
/** The deepest nesting of `[`/`{` in a JSON text, not counting brackets inside strings; stops past `limit`. */
export const jsonDepthExceeds = (text: string, limit: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 || c === 123) {
      if (++depth > limit) return true
    } else if (c === 93 || c === 125) depth--
  }
  return false
}
