using System.Globalization;
using Microsoft.Extensions.Primitives;

namespace Passage.Http;

/// <summary>
/// The Max-Forwards field (RFC 9110 §7.6.2), which only OPTIONS and TRACE heed: how many more intermediaries may forward
/// the request. An intermediary that receives 0 is the request's final recipient and answers it itself; one that forwards
/// the request sends one less.
/// </summary>
internal static class MaxForwards
{
    /// <summary>The field's name.</summary>
    public const string Name = "Max-Forwards";

    /// <summary>Whether a request of <paramref name="method"/> heeds Max-Forwards: OPTIONS and TRACE do, no other method.</summary>
    public static bool Heeds(string method) => method is "OPTIONS" or "TRACE";

    /// <summary>
    /// The Max-Forwards of a request of <paramref name="method"/> whose Max-Forwards field lines hold
    /// <paramref name="values"/>. Null for any method but OPTIONS and TRACE, and when there is no Max-Forwards, or not one
    /// number (1*DIGIT): such a request goes on with the field unchanged. Leading zeros count for nothing
    /// (<c>0000000000000000000</c> is 0, and this intermediary the request's final recipient); a number of 10^18 or more
    /// counts as <see cref="Largest"/>, the largest this intermediary supports (RFC 9110 §7.6.2 forwards the lesser of one
    /// less and that).
    /// </summary>
    /// <remarks>
    /// Every request a proxy or a tunnel end serves is asked this, so the values come as <see cref="StringValues"/>, which
    /// a caller holds without an allocation (as an <c>IEnumerable</c> they were boxed for every request).
    /// </remarks>
    public static long? Remaining(string method, StringValues values) =>
        Heeds(method) && values.Count == 1 && values[0] is { Length: > 0 } value && !value.AsSpan().ContainsAnyExceptInRange('0', '9')
            ? value.AsSpan().TrimStart('0') switch
            {
                { IsEmpty: true } => 0,
                { Length: <= 18 } digits => long.Parse(digits, CultureInfo.InvariantCulture),
                _ => Largest,
            }
            : null;

    /// <summary>The largest Max-Forwards counted: 10^18 - 1 (what a longer number counts as).</summary>
    public const long Largest = 999_999_999_999_999_999;
}
