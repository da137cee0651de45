namespace Passage.Tests.Infrastructure;

/// <summary>
/// Seeded mutations of a valid message, for the parsers' fuzz tests: one to three edits among flipped bits, bytes the
/// grammar cares about, cuts, insertions, deleted and repeated stretches, length-like bytes set to an extreme or off by
/// one, and random bytes. The same seed gives the same
/// mutations, so that a failure names the input that made it.
/// </summary>
internal static class ByteMutations
{
    /// <summary><paramref name="original"/> with one to three random edits, the bytes put in drawn from <paramref name="interesting"/> (or any byte).</summary>
    public static byte[] Mutate(byte[] original, Random random, byte[] interesting)
    {
        var bytes = new List<byte>(original);
        var edits = random.Next(1, 4);
        for (var e = 0; e < edits && bytes.Count > 0; e++)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(8))
            {
                case 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    bytes[at] = interesting[random.Next(interesting.Length)];
                    break;
                case 2:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case 3:
                    bytes.InsertRange(at, Enumerable.Range(0, random.Next(1, 4)).Select(_ => interesting[random.Next(interesting.Length)]));
                    break;
                case 4:
                    bytes.RemoveRange(at, Math.Min(random.Next(1, 8), bytes.Count - at));
                    break;
                case 5:
                    // Repeat a stretch: duplicate fields, doubled line ends, a length byte twice.
                    bytes.InsertRange(at, bytes.GetRange(at, Math.Min(random.Next(1, 40), bytes.Count - at)));
                    break;
                case 6:
                    // Length-like fields: extremes and off by one around the value there.
                    bytes[at] = random.Next(4) switch { 0 => 0, 1 => 0xFF, 2 => (byte)(bytes[at] + 1), _ => (byte)(bytes[at] - 1) };
                    break;
                default:
                    bytes[at] = (byte)random.Next(256);
                    break;
            }
        }

        return [.. bytes];
    }
}
