// Shows the face's rendered portrait frames on a UI RawImage and/or a Renderer's material.
// Raw frames arrive with rows top to bottom; Unity textures want bottom to top, so rows are
// flipped before LoadRawTextureData. JPEG frames go through ImageConversion.LoadImage.
using Npcface.Client;
using UnityEngine;
using UnityEngine.UI;

namespace Npcface.Unity
{
    [AddComponentMenu("npcface/Npcface Frame Applier")]
    public sealed class NpcfaceFrameApplier : MonoBehaviour
    {
        public NpcfaceFace face;
        [Tooltip("A UI RawImage to show the portrait on.")]
        public RawImage rawImage;
        [Tooltip("And/or a Renderer whose material's main texture becomes the portrait.")]
        public Renderer targetRenderer;

        /// <summary>The texture the frames are written into (created on the first frame).</summary>
        public Texture2D Texture { get; private set; }
        /// <summary>The index of the frame shown last, -1 before any.</summary>
        public int ShownIndex { get; private set; }

        FrameMessage shown;
        byte[] flipped = new byte[0];

        void Start()
        {
            ShownIndex = -1;
            if (face == null)
                face = GetComponentInParent<NpcfaceFace>();
        }

        void LateUpdate()
        {
            if (face == null || face.CurrentFrame == null || face.CurrentFrame == shown)
                return;
            Show(face.CurrentFrame);
        }

        void Show(FrameMessage frame)
        {
            shown = frame;
            ShownIndex = frame.Index;
            if (frame.Format == "jpeg")
            {
                EnsureTexture(frame.Width, frame.Height, TextureFormat.RGB24);
                Texture.LoadImage(frame.Pixels);  // decodes, orients and uploads
            }
            else
            {
                bool rgba = frame.Format == "rgba8";
                EnsureTexture(frame.Width, frame.Height, rgba ? TextureFormat.RGBA32 : TextureFormat.RGB24);
                if (flipped.Length != frame.Pixels.Length)
                    flipped = new byte[frame.Pixels.Length];
                FrameRows.FlipVertical(frame.Pixels, flipped, frame.Width, frame.Height, rgba ? 4 : 3);
                Texture.LoadRawTextureData(flipped);
                Texture.Apply(false);
            }
            if (rawImage != null)
                rawImage.texture = Texture;
            if (targetRenderer != null)
                targetRenderer.material.mainTexture = Texture;
        }

        void EnsureTexture(int width, int height, TextureFormat format)
        {
            if (Texture != null && Texture.width == width && Texture.height == height && Texture.format == format)
                return;
            if (Texture != null)
                Destroy(Texture);
            Texture = new Texture2D(width, height, format, false);
            Texture.name = "npcface " + face.SessionName;
        }

        void OnDestroy()
        {
            if (Texture != null)
                Destroy(Texture);
        }
    }
}
