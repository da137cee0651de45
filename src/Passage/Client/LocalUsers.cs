using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Unicode;

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
    /// compared in a time that does not tell how much of it was right, nor whether the name was known. Both are read as
    /// they came, in UTF-8 (a name that is not is no one's, and a password that is not is no configured one): the password
    /// never becomes a string, which could not be cleared.
    /// </summary>
    public static bool Admits(IReadOnlyDictionary<string, string> users, ReadOnlySpan<byte> user, ReadOnlySpan<byte> password)
    {
        var known = TryFind(users, user, out var expected);
        Span<byte> expectedHash = stackalloc byte[SHA256.HashSizeInBytes];
        Span<byte> passwordHash = stackalloc byte[SHA256.HashSizeInBytes];
        try
        {
            HashUtf8(known ? expected! : UnknownUserPassword, expectedHash);
            HashPadded(password, passwordHash);
            var same = CryptographicOperations.FixedTimeEquals(expectedHash, passwordHash);
            // Both computed before either is looked at: no branch on which failed.
            return known & same;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(expectedHash);
            CryptographicOperations.ZeroMemory(passwordHash);
        }
    }

    /// <summary>
    /// The password of the user whose name is <paramref name="user"/> in UTF-8: looked up by the name's characters where
    /// the dictionary can (a <see cref="Dictionary{TKey, TValue}"/> with a string comparer that reads spans, as the
    /// configuration's is), by a string of the name otherwise.
    /// </summary>
    private static bool TryFind(IReadOnlyDictionary<string, string> users, ReadOnlySpan<byte> user, out string? password)
    {
        password = null;
        char[]? rented = null;
        Span<char> name = user.Length <= 256 ? stackalloc char[256] : (rented = ArrayPool<char>.Shared.Rent(user.Length));
        try
        {
            if (Utf8.ToUtf16(user, name, out _, out var length, replaceInvalidSequences: false) != OperationStatus.Done)
            {
                return false;
            }
            return users is Dictionary<string, string> dictionary && dictionary.TryGetAlternateLookup<ReadOnlySpan<char>>(out var lookup)
                ? lookup.TryGetValue(name[..length], out password)
                : users.TryGetValue(new string(name[..length]), out password);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented, clearArray: true);
            }
        }
    }

    /// <summary>
    /// The longest password hashed in the same time whatever its length: RFC 1929's 255 bytes, as long as a configured one
    /// may be. A known user's password was hashed as it is, an unknown name's stand-in (21 bytes) in one SHA-256 block and a
    /// 255-byte password in five: how long a refusal took told which names exist.
    /// </summary>
    private const int PaddedLength = 255;

    /// <summary><see cref="HashPadded"/> of <paramref name="text"/>'s UTF-8, through a buffer cleared after.</summary>
    private static void HashUtf8(string text, Span<byte> hash)
    {
        var bytes = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(text.Length));
        try
        {
            HashPadded(bytes.AsSpan(0, Encoding.UTF8.GetBytes(text, bytes)), hash);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes, clearArray: true);
        }
    }

    /// <summary>
    /// The SHA-256 of <paramref name="bytes"/> up to <see cref="PaddedLength"/> long as one block of a fixed size (a tag, their
    /// length, them, zeros), so that the work does not depend on their length; a longer input (only an HTTP Basic attempt
    /// can be, and matches no configured password) under another tag, as it is. Through a buffer cleared after.
    /// </summary>
    private static void HashPadded(ReadOnlySpan<byte> bytes, Span<byte> hash)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(PaddedLength + 2, bytes.Length + 1));
        try
        {
            int length;
            if (bytes.Length <= PaddedLength)
            {
                buffer[0] = 1;
                buffer[1] = (byte)bytes.Length;
                bytes.CopyTo(buffer.AsSpan(2));
                buffer.AsSpan(2 + bytes.Length, PaddedLength - bytes.Length).Clear();
                length = PaddedLength + 2;
            }
            else
            {
                buffer[0] = 2;
                bytes.CopyTo(buffer.AsSpan(1));
                length = bytes.Length + 1;
            }
            SHA256.HashData(buffer.AsSpan(0, length), hash);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
        }
    }
}
