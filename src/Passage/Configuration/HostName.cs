namespace Passage.Configuration;

/// <summary>DNS host name syntax (RFC 1123 §2.1, with underscores tolerated as resolvers do).</summary>
public static class HostName
{
    /// <summary>
    /// True for an ASCII host name of 1 to 253 characters whose dot-separated labels are 1 to 63
    /// letters, digits, hyphens or underscores, not starting or ending with a hyphen. A trailing dot
    /// is allowed.
    /// </summary>
    public static bool IsValid(ReadOnlySpan<char> name)
    {
        if (name.EndsWith("."))
        {
            name = name[..^1];
        }
        if (name.IsEmpty || name.Length > 253)
        {
            return false;
        }
        foreach (var range in name.Split('.'))
        {
            var label = name[range];
            if (label.IsEmpty || label.Length > 63 || label[0] == '-' || label[^1] == '-')
            {
                return false;
            }
            foreach (var c in label)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_')
                {
                    return false;
                }
            }
        }
        return true;
    }
}
