using System.Security.Cryptography;
using System.Text;

namespace Passage.Client;

/// <summary>The users a local proxy admits (SOCKS5's RFC 1929, the HTTP proxy's Basic): user name to password.</summary>
internal static class LocalUsers
{
    /// <summary>
    /// What the password of a user name that is not one of them is compared with: the same work is done for an unknown
    /// name as for a known one, so that how long a refusal takes does not tell which names exist. Never admits: an
    /// unknown name is refused whatever the comparison says.
    /// </summary>
    internal const string UnknownUserPassword = "passage: no such user";

    /// <summary>
    /// Whether <paramref name="user"/> is one of <paramref name="users"/> and <paramref name="password"/> its password,
    /// compared in a time that does not tell how much of it was right, nor whether the name was known.
    /// </summary>
    public static bool Admits(IReadOnlyDictionary<string, string> users, string user, string password)
    {
        var known = users.TryGetValue(user, out var expected);
        var same = CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(known ? expected! : UnknownUserPassword)), SHA256.HashData(Encoding.UTF8.GetBytes(password)));
        // Both computed before either is looked at: no branch on which failed.
        return known & same;
    }
}
