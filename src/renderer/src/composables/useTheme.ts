import { onMounted, ref, watch } from 'vue';

type Theme = 'dark' | 'light';
const storageKey = 'quorumscope.theme';

/** Dark by default (operators work at night); remembered per machine. */
export function useTheme() {
  const theme = ref<Theme>('dark');
  onMounted(() => {
    const saved = localStorage.getItem(storageKey);
    if (saved === 'light' || saved === 'dark') theme.value = saved;
    document.documentElement.dataset.theme = theme.value;
  });
  watch(theme, (value) => {
    document.documentElement.dataset.theme = value;
    localStorage.setItem(storageKey, value);
  });
  const toggleTheme = () => {
    theme.value = theme.value === 'dark' ? 'light' : 'dark';
  };
  return { theme, toggleTheme };
}
