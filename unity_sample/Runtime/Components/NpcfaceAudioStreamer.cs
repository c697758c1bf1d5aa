// Plays an AudioClip and streams its samples to the face's session, a little ahead of playback,
// so ticks arrive before they are due. Playback is scheduled startDelaySeconds ahead on the DSP
// clock (AudioSource.PlayScheduled) and the face samples its ticks on that same clock.
using Npcface.Client;
using UnityEngine;

namespace Npcface.Unity
{
    [RequireComponent(typeof(AudioSource))]
    [AddComponentMenu("npcface/Npcface Audio Streamer")]
    public sealed class NpcfaceAudioStreamer : MonoBehaviour
    {
        public NpcfaceFace face;
        [Tooltip("Spoken by Speak() with no arguments, or at start with speakWhenOpen.")]
        public AudioClip clip;
        [Tooltip("What the clip says (optional; improves lip sync).")]
        [TextArea] public string text = "";
        public bool speakWhenOpen = false;
        [Tooltip("Playback starts this long after Speak: covers the sidecar's lookahead and processing.")]
        [Range(0.05f, 2f)] public float startDelaySeconds = 0.25f;
        [Tooltip("How far ahead of playback audio is sent.")]
        [Range(0.05f, 5f)] public float sendAheadSeconds = 0.5f;
        [Range(0.01f, 0.5f)] public float chunkSeconds = 0.05f;

        public bool IsSpeaking { get; private set; }

        AudioSource source;
        float[] samples;
        string lineText;
        int rate, channels, sentFrames, totalFrames;
        double playStartDsp;

        void Awake()
        {
            source = GetComponent<AudioSource>();
            if (face == null)
                face = GetComponentInParent<NpcfaceFace>();
        }

        void Start()
        {
            if (face != null && speakWhenOpen)
                face.Opened += opened => Speak();
        }

        void Update()
        {
            if (IsSpeaking)
                Stream();
        }

        public bool Speak() { return Speak(clip, text); }

        /// <summary>Plays the clip and animates the face with it; false if the session is not open yet.</summary>
        public bool Speak(AudioClip line, string spokenText)
        {
            if (face == null || !face.IsOpen || line == null)
                return false;
            if (!ReadSamples(line))
                return false;
            lineText = string.IsNullOrEmpty(spokenText) ? null : spokenText;
            sentFrames = 0;
            playStartDsp = AudioSettings.dspTime + startDelaySeconds;
            source.clip = line;
            source.PlayScheduled(playStartDsp);
            face.BeginLine(playStartDsp);
            IsSpeaking = true;
            Stream();
            return true;
        }

        bool ReadSamples(AudioClip line)
        {
            var data = new float[line.samples * line.channels];
            if (!line.GetData(data, 0))
            {
                Debug.LogError("npcface: cannot read the samples of " + line.name + ": set its Load Type to Decompress On Load", this);
                return false;
            }
            rate = line.frequency;
            channels = line.channels;
            totalFrames = line.samples;
            if (channels > 2)
            {
                data = DownmixToMono(data, channels);  // the protocol takes mono or stereo
                channels = 1;
            }
            samples = data;
            return true;
        }

        void Stream()
        {
            double played = AudioSettings.dspTime - playStartDsp;
            int due = (int)System.Math.Min(totalFrames, System.Math.Max(0.0, (played + sendAheadSeconds) * rate));
            int chunk = System.Math.Max(1, (int)(chunkSeconds * rate));
            while (sentFrames < due)
            {
                int count = System.Math.Min(chunk, due - sentFrames);
                face.SendAudio(samples, sentFrames * channels, count * channels, rate, channels, sentFrames == 0 ? lineText : null);
                sentFrames += count;
            }
            if (sentFrames >= totalFrames)
            {
                face.EndLine();
                IsSpeaking = false;
            }
        }

        static float[] DownmixToMono(float[] interleaved, int channelCount)
        {
            var mono = new float[interleaved.Length / channelCount];
            for (int i = 0; i < mono.Length; i++)
            {
                float sum = 0f;
                for (int c = 0; c < channelCount; c++)
                    sum += interleaved[i * channelCount + c];
                mono[i] = sum / channelCount;
            }
            return mono;
        }
    }
}
