using System.Security.Cryptography;
using System.Text;

namespace Passage.Client;

/// <summary>The users a local proxy admits (SOCKS5's RFC 1929, the HTTP proxy's Basic): user name to password.</summary>
internal static class LocalUsers
{
    /// <summary>
    /// Whether <paramref name="user"/> is one of <paramref name="users"/> and <paramref name="password"/> its password,
    /// compared in a time that does not tell how much of it was right.
    /// </summary>
    public static bool Admits(IReadOnlyDictionary<string, string> users, string user, string password) =>
        users.TryGetValue(user, out var expected)
        && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(expected)), SHA256.HashData(Encoding.UTF8.GetBytes(password)));
}
